"""``python -m devstack up|down|env|images``: the local stack's command line.

This is the only place of the package that reads the process environment; it hands a copy down.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from . import envfile, images
from .child import Child
from .probes import docker_answers
from .profile import PROFILES, get_profile
from .secrets import load_or_create
from .services import Context, Dockerd
from .supervisor import Supervisor, stop_supervisor, supervisor_pid

log = logging.getLogger("devstack")


def _context(profile_name: str, environ: dict[str, str]) -> Context:
    profile = get_profile(profile_name)
    profile.datadir.mkdir(parents=True, exist_ok=True)
    secrets = load_or_create(profile.datadir / "secrets.json")
    return Context(profile, secrets, envfile.stack_env(profile, secrets), environ)


def cmd_up(args: argparse.Namespace, environ: dict[str, str]) -> int:
    ctx = _context(args.profile, environ)
    mirror = environ.get("DEBOOTSTRAP_MIRROR", images.DEFAULT_MIRROR)
    supervisor = Supervisor(
        ctx, build_images=not args.no_images, allow_missing=args.allow_missing, mirror=mirror
    )
    return supervisor.run()


def cmd_down(args: argparse.Namespace, environ: dict[str, str]) -> int:
    profile = get_profile(args.profile)
    pid = supervisor_pid(profile)
    if pid is None:
        print(f"no {profile.name} stack is running")
        return 0
    print(f"stopping the {profile.name} stack (supervisor pid {pid}) ...", flush=True)
    clean = stop_supervisor(pid)
    print("stopped" if clean else "supervisor did not stop in time; killed it")
    return 0


def cmd_env(args: argparse.Namespace, environ: dict[str, str]) -> int:
    ctx = _context(args.profile, environ)
    for line in envfile.render(ctx.stack_env).splitlines():
        print(line if line.startswith("#") else f"export {line}")
    return 0


def cmd_images(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Seed the base image, build the pipeline images and the api/worker images, with a dockerd
    of our own if none answers."""
    ctx = _context(args.profile, environ)
    profile = ctx.profile
    profile.logs.mkdir(parents=True, exist_ok=True)
    log_path = profile.log("images")
    dockerd: Child | None = None
    started = time.monotonic()
    try:
        if not docker_answers(environ):
            service = Dockerd(ctx)
            reason = service.missing()
            if reason:
                log.error("%s", reason)
                return 1
            log.info("no Docker engine answers; starting dockerd for the build")
            service.prepare()
            dockerd = service.child()
            dockerd.start()
            deadline = time.monotonic() + service.start_timeout
            while not service.ready(dockerd):
                if dockerd.poll() is not None or time.monotonic() > deadline:
                    log.error("dockerd did not come up; see %s", dockerd.log_path)
                    return 1
                time.sleep(0.5)
        mirror = environ.get("DEBOOTSTRAP_MIRROR", images.DEFAULT_MIRROR)
        how = images.ensure_base(environ, log_path, log.info, tag=args.base_tag, mirror=mirror)
        log.info("base image %s: %s", args.base_tag, how)
        if not args.base_only:
            built = images.build_pipelines(
                profile.root, environ, log_path, log.info, force=args.force, only=args.only or None
            )
            for name, state in built.items():
                log.info("pipeline-%s:latest %s", name, state)
            if not args.no_apps and not args.only:
                apps = images.build_apps(
                    profile.root, environ, log_path, log.info, force=args.force
                )
                apps |= images.build_services(
                    profile.root, environ, log_path, log.info, force=args.force
                )
                for tag, state in apps.items():
                    log.info("%s %s", tag, state)
                built.update(apps)
            failed = [n for n, s in built.items() if s.startswith("failed")]
            if failed:
                log.error("images FAILED to build: %s (log: %s)", ", ".join(failed), log_path)
                return 1
        log.info("images done in %.1f s", time.monotonic() - started)
        return 0
    except images.ImageError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if dockerd is not None:
            dockerd.stop()


def main(argv: list[str] | None = None) -> int:
    environ = dict(os.environ)
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_profile(p: argparse.ArgumentParser, default: str = "dev") -> None:
        p.add_argument("--profile", choices=PROFILES, default=default)

    up = sub.add_parser("up", help="start and supervise the stack (Ctrl-C stops it)")
    with_profile(up)
    up.add_argument("--no-images", action="store_true", help="skip base image and pipeline builds")
    up.add_argument(
        "--allow-missing",
        action="store_true",
        help="skip services whose code is not there yet instead of failing (partial stacks)",
    )
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop the running stack of a profile")
    with_profile(down)
    down.set_defaults(func=cmd_down)

    env = sub.add_parser("env", help="print the stack's settings as export lines")
    with_profile(env)
    env.set_defaults(func=cmd_env)

    img = sub.add_parser("images", help="seed the base image, build pipeline and api/worker images")
    with_profile(img)
    img.add_argument("--base-tag", default=images.BASE_TAG, help="base tag to ensure/seed")
    img.add_argument("--base-only", action="store_true", help="only ensure the base image")
    img.add_argument("--force", action="store_true", help="rebuild even when up to date")
    img.add_argument("--only", action="append", metavar="NAME", help="build only this pipeline")
    img.add_argument(
        "--no-apps",
        action="store_true",
        help="skip the orchestrator-api/orchestrator-worker images (root Dockerfile) and the "
        "locally built stand-ins for compose.yml's third-party images (deploy/images)",
    )
    img.set_defaults(func=cmd_images)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout
    )
    return int(args.func(args, environ))


if __name__ == "__main__":
    sys.exit(main())
