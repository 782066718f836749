"""The demo's engine configuration: the shop application as an operator would describe it.

Kept as YAML text (the same schema an operator writes, validated by the same compiler), so
`palisade demo` shows a configuration one can copy into a real deployment.
"""

from __future__ import annotations

from node.config import EngineConfig, parse_config_text

# Monitors and partners (node.sim.agents.SERVICES): legitimate automation that an operator
# puts on the exception list, as the simulator's partner family expects.
SERVICES_NET = "198.18.210.0/24"

DEMO_YAML = f"""\
applications:
  - name: shop
    hosts: ["*"]
    session:
      cookie: sid
    auth_endpoints:
      - method: POST
        path: /api/login
        username: {{json: username}}
        success: [200]
        failure: [400, 401]
    critical_endpoints: ["POST /api/checkout"]
    sensitive_endpoints: ["GET /api/export", "GET /api/orders", "/api/orders/{{id}}",
                          "POST /api/upload"]
    templates: ["/api/products/{{id}}", "/api/orders/{{id}}"]

profiles:
  - name: shop
    applications: [shop]
    tolerance: normal
    reactions:
      default: {{action: denylist, duration: 1h}}
      security_crawlers: {{action: denylist, duration: 1d}}

exceptions:
  - {SERVICES_NET}
"""


def demo_engine_config() -> EngineConfig:
    return parse_config_text(DEMO_YAML, "<palisade demo>").engine
