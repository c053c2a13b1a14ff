"""``hybrid notify test PROFILE``: send a test message to every notification target of a profile."""

from __future__ import annotations

import click


@click.group("notify")
def command() -> None:
    """Notifications of the profile's notify: targets (Apprise URLs from the environment)."""


@command.command("test")
@click.argument("profile_path", metavar="PROFILE", type=click.Path(dir_okay=False))
def test(profile_path: str) -> None:
    """Send a test message to every target and wait for each answer.

    Prints one line per target; exits 1 naming the targets that failed, 2 when the profile
    has no target or one cannot be resolved (variable unset, URL Apprise does not know).
    """
    from ..errors import CheckFailed, ProfileError
    from ..ops.logging_setup import configure_logging, redact
    from ..ops.notify import notify_test_message
    from ..ops.notify_channel import send_message
    from ..ops.notify_targets import resolve_targets, target_secrets
    from ..profile import load_profile
    from ..safety import resolve_mode

    profile = load_profile(profile_path)
    if not profile.notify:
        raise ProfileError(f"{profile_path}: no notify: targets; add e.g. "
                           f"`notify: [{{url: $HYBRID_NOTIFY_TELEGRAM, events: [fill, error]}}]`")
    targets = resolve_targets(profile.notify)
    configure_logging(level="WARNING", secrets=target_secrets(targets))
    mode = resolve_mode()
    failed = []
    for target in targets:
        ok, why = send_message(target, notify_test_message(target, profile.name, mode))
        click.echo(f"{'ok    ' if ok else 'FAILED'} {target.name}{'' if ok else f': {redact(why)}'}")
        if not ok:
            failed.append(target.name)
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(targets)} notification target(s) failed: {', '.join(failed)}")
