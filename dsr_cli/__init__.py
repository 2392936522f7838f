"""`dsr`: the command-line tool a privacy officer uses against the data subject request API.

Submit, watch, decide, extend, list and download requests through the HTTP API of the Function App (or the
local stack). Not deployed with the Functions app (see .funcignore); installed in the venv as the `dsr` command.
"""
