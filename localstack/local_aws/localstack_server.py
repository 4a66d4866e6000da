"""LocalStack in host mode (no Docker): its command line, environment, init hooks and readiness check.

The recipe is localstack/README.md: LocalStack's runtime main (through ``localstack_entry.py``, which
empties its CORS allow-list first) from ``.venv-localstack`` with the
hypercorn gateway (the default twisted gateway binds 0.0.0.0 whatever it is told), DNS server off,
FILESYSTEM_ROOT kept under the state directory between runs (the first start builds a cache).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict

from local_aws.http import get_json
from local_aws.service import ManagedService, StartError
from local_aws.settings import HOST, LOCALSTACK_DIR, RESOURCES_FILE, Settings

NAME = "localstack"
# The process runs LocalStack's main through this file (its CORS allow-list emptied first).
ENTRY = Path(__file__).with_name("localstack_entry.py")
MARKER = ENTRY.name
SERVICES = "s3,sns,sqs,sts,iam,cloudwatch"
HOOKS_SOURCE = LOCALSTACK_DIR / "init"
# Variables a developer may want to pass through to LocalStack (log verbosity); everything else is set here.
PASS_THROUGH = ("DEBUG", "LS_LOG")


def environment(settings: Settings) -> Dict[str, str]:
    """A minimal, explicit environment: nothing of the caller's AWS_* settings leaks into LocalStack."""
    gateway = f"{HOST}:{settings.localstack_port}"
    env = {
        key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR", *PASS_THROUGH) if key in os.environ
    }
    env.update(
        {
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(settings.filesystem_root),
            "GATEWAY_LISTEN": gateway,
            "GATEWAY_SERVER": "hypercorn",
            # Host part of the URLs LocalStack hands out (SQS queue URLs): loopback, not a DNS name
            # (the default localhost.localstack.cloud needs a resolver these machines may not have).
            "LOCALSTACK_HOST": gateway,
            "SERVICES": SERVICES,
            "SQS_ENDPOINT_STRATEGY": "path",
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "RECSYS_LOCAL_RESOURCES": str(RESOURCES_FILE),
            # With the allow-list emptied (localstack_entry), no web page may call LocalStack: no CORS
            # response headers at all, and S3 under the same origin check as every other service.
            "DISABLE_CORS_HEADERS": "1",
            "DISABLE_CUSTOM_CORS_S3": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def install_hooks(settings: Settings) -> None:
    """Copy ``localstack/init/<stage>.d/*`` into FILESYSTEM_ROOT, replacing whatever was there.

    Copied (not linked) so a hook edited while LocalStack runs takes effect at the next start, and so
    the runtime directory holds exactly the hooks of this checkout.
    """
    target = settings.filesystem_root / "etc" / "localstack" / "init"
    for stage_dir in sorted(HOOKS_SOURCE.glob("*.d")):
        destination = target / stage_dir.name
        shutil.rmtree(destination, ignore_errors=True)
        destination.mkdir(parents=True)
        for hook in sorted(stage_dir.iterdir()):
            if hook.is_file():
                shutil.copy2(hook, destination / hook.name)


def is_ready(settings: Settings) -> bool:
    """Health endpoint up, READY stage done, and every READY hook SUCCESSFUL (a failed hook raises)."""
    base = settings.localstack_url
    health = get_json(f"{base}/_localstack/health")
    if not health or "services" not in health:
        return False
    ready = get_json(f"{base}/_localstack/init/ready")
    if not ready or not ready.get("completed"):
        return False
    init = get_json(f"{base}/_localstack/init") or {}
    failed = [s.get("name") for s in init.get("scripts", []) if s.get("state") == "ERROR"]
    if failed:
        raise StartError(f"{NAME}: init hook(s) failed: {', '.join(map(str, failed))}")
    return True


def service(settings: Settings) -> ManagedService:
    """The LocalStack gateway on 127.0.0.1:``settings.localstack_port`` as a managed background server."""
    python = settings.localstack_venv / "bin" / "python"

    def before_start() -> None:
        if not python.exists():
            raise StartError(f"{NAME}: {python} is missing; run `make local-up` (it installs it)")
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        install_hooks(settings)

    return ManagedService(
        name=NAME,
        port=settings.localstack_port,
        # -P: the file's folder stays off sys.path (its http.py would shadow the standard library's).
        command=[str(python), "-P", str(ENTRY)],
        env=environment(settings),
        pid_file=settings.pid_file(NAME),
        log_file=settings.log_file(NAME),
        marker=MARKER,
        ready=lambda: is_ready(settings),
        port_env="LOCALSTACK_PORT",
        before_start=before_start,
    )
