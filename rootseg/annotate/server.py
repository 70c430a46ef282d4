"""Build the app from the `annotate` config and serve it with uvicorn until Ctrl+C.

Bound to a loopback address (127.0.0.1 by default) nothing else on the network can connect, so no token is
needed unless one is given. Bound to any other address, every request must carry a token: the one given as
`token=`, or a random one printed in the URL. The socket is bound here, before uvicorn starts, so `port=0`
(any free port) prints the port really used.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rootseg.annotate import backend
from rootseg.annotate.app import create_app
from rootseg.annotate.finetune import FineTuner
from rootseg.annotate.project import Project
from rootseg.annotate.service import ModelService
from rootseg.config import typed
from rootseg.models import shipped

log = logging.getLogger("rootseg.annotate")

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token requests must carry: the one given, a new random one off loopback, else none."""
    if token not in (None, ""):
        if len(str(token)) < 16:
            raise ValueError(f"token must be at least 16 characters (got {len(str(token))}); or leave it out")
        return str(token)
    return None if is_loopback(host) else secrets.token_urlsafe(24)


#: the typed settings of conf/annotate.yaml (rootseg.config.typed), checked before the checkpoint is loaded
SETTINGS = {
    "port": typed.Number(whole=True, low=0, high=65535, unit="0: any free port"),
    "max_upload_mb": typed.Number(low=0, low_open=True, unit="MB"),
    "threshold": typed.Number(low=0, high=1, low_open=True, high_open=True, optional=True, unit="probability"),
    "margin": typed.Number(low=0, high=1, low_open=True, unit="probability"),
    "finetune.max_epochs": typed.Number(whole=True, low=1),
}


def check_settings(cfg: DictConfig) -> None:
    """Fail on a bad option before the checkpoint is loaded."""
    if not str(cfg.get("project") or "").strip() or cfg.project == "???":
        raise ValueError("project is required: python -m rootseg.annotate project=DIR [ckpt_path=CKPT]")
    typed.check(cfg, SETTINGS)


def starting_checkpoint(cfg: DictConfig) -> str | None:
    """`ckpt_path`; without one (a project with no model yet) the shipped `start_model`, when it ships."""
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    start = cfg.get("start_model")
    if not start:
        return None
    if not shipped.shipped_models():
        log.warning("start_model=%s: no model ships with this installation; annotating without a model", start)
        return None
    shipped.shipped_file(str(start))  # an unknown name lists the shipped ones; a damaged file is refused
    log.info(
        "no ckpt_path: starting from the shipped model %s (ckpt_path=CKPT: your own; start_model=null: none)", start
    )
    return str(start)


def build(cfg: DictConfig) -> tuple[Any, ModelService, str | None]:
    """The ASGI app, its model service (scoring not started yet) and the token, from the config."""
    check_settings(cfg)
    location = backend.locate_project(str(cfg.project), cfg.get("dataset_dir"))
    project = Project(location)
    work_dir = Path(str(cfg.work_dir)) if cfg.get("work_dir") else location.project_dir / "rootseg_annotate"
    ckpt = starting_checkpoint(cfg)
    threshold = None if cfg.get("threshold") is None else float(cfg.threshold)
    service = ModelService(
        project, ckpt, work_dir / "cache", threshold, float(cfg.margin), str(cfg.rank), str(cfg.device)
    )
    tuner = FineTuner(service, work_dir, int(cfg.finetune.max_epochs), list(cfg.finetune.overrides or []))
    token = resolve_token(str(cfg.host), cfg.get("token"))
    hosts = LOOPBACK_NAMES | {str(cfg.host)} if is_loopback(str(cfg.host)) else None
    max_bytes = int(float(cfg.max_upload_mb) * 2**20)
    return (
        create_app(project, service, tuner, token=token, allowed_hosts=hosts, max_upload_bytes=max_bytes),
        service,
        token,
    )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}); choose another port= or host=") from error
    sock.listen(64)
    sock.set_inheritable(False)
    return sock


def serve(cfg: DictConfig) -> None:
    """Serve until interrupted; prints the URL to open (with the token when there is one)."""
    import uvicorn

    app, service, token = build(cfg)
    sock = bind(str(cfg.host), int(cfg.port))
    port = sock.getsockname()[1]
    shown = f"[{cfg.host}]" if ":" in str(cfg.host) else str(cfg.host)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    service.start_scoring()
    print(f"rootseg annotate: open {url}", flush=True)
    if token and is_loopback(str(cfg.host)) is False:
        print("anyone who can reach this address and has the token can read and change the project", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=str(cfg.log_level), access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        app.state.tuner.stop()  # a fine-tune run does not outlive the app that would judge it
        service.stop_scoring()
        sock.close()
