"""Every channel-layer group name is built here, nowhere else."""

MARKET = "market"


def member_group(member_id: int) -> str:
    """Private events of one member (fills, their own settlement)."""
    return f"member.{member_id}"
