"""The MCP front end: the bridge's services as MCP tools (and shadow files as resources) over the streamable HTTP
transport at /mcp, in the same process and event loop as the HTTP API.

Like api/, it is a front end over lighthouse_bridge.services and never imports the HTTP routes (nor they it).
Authentication is the HTTP API's: every request to /mcp carries a bearer token (agents.auth.authenticate), and each
tool is authorised against the role table entry of the HTTP route it mirrors (agents.roles), so a viewer cannot
validate and a builder cannot approve, whichever front end it uses.
"""
