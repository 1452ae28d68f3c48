"""docker/nginx/synnet.conf.template, rendered with the compose file's values, passes `nginx -t`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[2] / "docker" / "nginx" / "synnet.conf.template"


def compose_values(compose: dict, prefix: Path) -> dict[str, str]:
    values = dict(compose["services"]["lb"]["environment"])
    # Only Docker's DNS knows the replicas' service name, and nginx -t resolves upstream hosts;
    # the log path is the image's, not writable here.
    values["SYNNET_UPSTREAM_SERVERS"] = values["SYNNET_UPSTREAM_SERVERS"].replace("synnet-replica", "127.0.0.1")
    values["NGINX_ACCESS_LOG"] = str(prefix / "access.log")
    return values


def nginx_t(nginx_command, conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30)


def test_rendered_template_passes_nginx_t(compose, nginx_config, nginx_command, tmp_path):
    conf = nginx_config(tmp_path, compose_values(compose, tmp_path))
    result = nginx_t(nginx_command, conf)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


def test_nginx_t_rejects_a_broken_upstream(compose, nginx_config, nginx_command, tmp_path):
    # Proves the check above parses the template rather than passing whatever it is given.
    values = compose_values(compose, tmp_path) | {"SYNNET_UPSTREAM_SERVERS": "server 127.0.0.1:8000 bogus_flag;"}
    result = nginx_t(nginx_command, nginx_config(tmp_path, values))
    assert result.returncode != 0 and "bogus_flag" in result.stderr


def test_failed_and_overloaded_replicas_are_retried_elsewhere():
    text = TEMPLATE.read_text()
    (policy,) = re.findall(r"^\s*proxy_next_upstream\s+([^;]*);", text, flags=re.MULTILINE)
    assert {"error", "timeout", "http_502", "http_503"} <= set(policy.split())
    assert int(re.search(r"proxy_next_upstream_tries\s+(\d+);", text).group(1)) >= 2
