"""The routes of `cxrneo serve`, one router per concern; each route short, everything it needs from
cxrneo.api.deps."""
