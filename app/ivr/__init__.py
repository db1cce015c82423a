"""Voice: IVR flows as data, driven by telephony gateways webhooks (issue 14)."""
