"""Configuration files shared by tests."""

# Issue 5's example file, verbatim: it must load and work as written.
ISSUE5_EXAMPLE = """\
[[upstreams]]
name = "cheap"
protocol = "openai"
base_url = "http://127.0.0.1:18081/v1"
api_key = "sk-cheap"

[[upstreams]]
name = "claude"
protocol = "anthropic"
base_url = "http://127.0.0.1:18082"
api_key_env = "MY_ANTHROPIC_KEY"
client_profile = "claude-cli"

[[routes]]
match = "claude-*haiku*"
upstream = "cheap"
model = "small-model"

[[routes]]
match = "gpt-*"
upstream = "cheap"

[rules]                      # content rules, checked before routes; "upstream:model"
think = "cheap:reasoner-model"
long_context = "cheap:long-model"
long_context_threshold = 60000
"""
