"""Fixtures for the deployment checks: the compose file, and nginx run on the repository's template.

No Docker engine runs in CI, so the images and the compose file are checked statically; nginx,
though, is the real Debian binary (installed by .ci/run) running docker/nginx/synnet.conf.template.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
NGINX_TEMPLATE = REPO / "docker" / "nginx" / "synnet.conf.template"

# ${NAME} as the nginx image's envsubst step replaces it; nginx's own $variables have no braces.
TEMPLATE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# ${NAME:-default} / ${NAME-default} as compose interpolates it.
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


@pytest.fixture(scope="session")
def compose_raw() -> dict:
    """docker-compose.yml as written, ${VARIABLES} uninterpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="session")
def compose() -> dict:
    """docker-compose.yml as `docker compose config` sees it when no variable is set."""
    return yaml.safe_load(COMPOSE_VARIABLE.sub(lambda m: m.group(2) or "", COMPOSE_FILE.read_text()))


@pytest.fixture(scope="session")
def template_variables() -> set[str]:
    """The ${NAMES} docker/nginx/synnet.conf.template expects from the environment."""
    return set(TEMPLATE_VARIABLE.findall(NGINX_TEMPLATE.read_text()))


def render_template(values: dict[str, str]) -> str:
    """Substitute ``${NAME}`` like the nginx image's entrypoint; every name must be given."""
    text = NGINX_TEMPLATE.read_text()
    missing = sorted(set(TEMPLATE_VARIABLE.findall(text)) - set(values))
    if missing:
        raise KeyError(f"no value for template variables {missing}")
    return TEMPLATE_VARIABLE.sub(lambda m: values[m.group(1)], text)


def write_nginx_config(prefix: Path, values: dict[str, str]) -> Path:
    """A main nginx.conf under ``prefix`` that includes the rendered template.

    The main file stands in for the one the nginx image ships: everything nginx writes (pid,
    logs, temporary request bodies) goes under ``prefix``, so it runs unprivileged and leaves
    /var alone.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "synnet.conf").write_text(render_template(values))
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx hands requests to workers running as "nobody", who could not write the
    # temporary files into pytest's private (0700) folders.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n{temp_paths}\n    include {prefix / 'synnet.conf'};\n}}\n"
    )
    return conf


@pytest.fixture(scope="session")
def nginx_bin() -> str:
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if nginx is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)")
    return nginx


@pytest.fixture(scope="session")
def nginx_config():
    """``nginx_config(prefix, values) -> nginx.conf`` (see :func:`write_nginx_config`)."""
    return write_nginx_config


@pytest.fixture(scope="session")
def nginx_command(nginx_bin):
    """``nginx_command(conf, *flags)``: the nginx command line for a config written by nginx_config."""

    def command(conf: Path, *flags: str) -> list[str]:
        # -e: where errors go before the configuration is read (otherwise Debian's /var/log/nginx).
        return [nginx_bin, "-p", f"{conf.parent}/", "-c", str(conf), "-e", str(conf.parent / "error.log"), *flags]

    return command
