"""GridBot service core: settings, Redis, the WeCom adapter, the callback app and the router."""
