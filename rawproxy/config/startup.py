"""What the proxy says at start about its upstreams (issue 18): each active one, its URL and where its
configuration came from (flag, environment, ``.env``, file, default), and a warning for a base URL that
looks wrong. Users lost minutes to an exported ``ANTHROPIC_API_KEY`` that silently added an
api.anthropic.com upstream, to an OpenAI-compatible URL without its ``/v1`` (the server's 404 ``Invalid
URL (POST /chat/completions)``) and to one given as the whole endpoint (the path doubled).

``origins.where`` is asked by load.py while it reads the settings (the only reader of the environment);
``Config.origins`` keeps the answers; :func:`upstream_lines` and :func:`url_warnings` read them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..dialects import anthropic_messages, openai_chat
from ..profiles import guess_profile
from .model import Config

__all__ = ["upstream_lines", "url_warnings"]

# The settings that make the two built-in upstreams; a file's [[upstreams]] come from the file.
# What the proxy appends to a base URL: a base that already ends so is a whole endpoint.
_ENDPOINTS = (openai_chat.UPSTREAM_PATH, anthropic_messages.UPSTREAM_PATH)


def upstream_lines(config: Config) -> list[str]:
    """One line per active upstream: ``upstream anthropic (anthropic): https://api.anthropic.com (URL:
    default; key: environment ANTHROPIC_API_KEY)``; never a key."""
    origins = dict(config.origins)
    lines = []
    for spec in config.upstream_list():
        if any(spec is own for own in config.upstreams):  # a [[upstreams]] table of the file
            came = f"from the file {config.config_file}"
        else:  # one the flags, the environment or .env describe
            came = f"URL: {origins.get(spec.name + '_upstream', 'default')}; key: "
            came += origins.get(spec.name + "_key", "set") if spec.api_keys else "none"
        lines.append(f"upstream {spec.name} ({spec.protocol}): {spec.base_url} ({came})")
    return lines


def url_warnings(config: Config) -> list[str]:
    """A warning for each upstream base URL that looks wrong: a whole endpoint (the path would be
    doubled), an OpenAI-compatible server's bare host (its routes are under /v1). An Anthropic base
    ending in /v1 is taken as meant (the /v1 is dropped: Config.anthropic_base)."""
    warnings = []
    for spec in config.upstream_list():
        path = urlsplit(spec.base_url).path.rstrip("/")
        named = f"upstream {spec.name}: base URL {spec.base_url}"
        if path.endswith(_ENDPOINTS):
            ending = next(e for e in _ENDPOINTS if path.endswith(e))
            warnings.append(
                f"{named} ends in {ending}, a whole endpoint: give the base (the proxy adds {ending})"
            )
        elif (
            spec.protocol == "openai"
            and not path
            and guess_profile(spec.base_url, spec.profile).name != "azure"
        ):
            # (an Azure resource URL is right without a path: the deployment path is the proxy's)
            warnings.append(
                f"{named} has no path: OpenAI-compatible servers answer under /v1 (vLLM, Ollama, LiteLLM"
                " ...); add /v1 unless this one serves /chat/completions at its root"
            )
    return warnings
