from __future__ import annotations

import click


@click.command()
def mcp() -> None:
    """Serve recall, add, lint and show to agents over the Model Context Protocol (stdio).

    Needs the MCP SDK: pip install 'mtlgit[mcp]'. See docs/agents.md for client configurations.

    \b
    Example:
        claude mcp add mtlgit -- mtlgit -C /path/to/repo mcp   # Claude Code
    """
    from mtlgit.errors import MtlgitError

    try:
        from mtlgit.mcp_server import serve
    except ImportError:
        raise MtlgitError("`mtlgit mcp` needs the MCP SDK: pip install 'mtlgit[mcp]'") from None
    serve()
