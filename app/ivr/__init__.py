"""Voice: IVR flows as data and live calls, driven by telephony gateways' webhooks."""
