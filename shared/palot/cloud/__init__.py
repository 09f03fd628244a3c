"""Palot's cloud tier: Cloudflare Containers behind Palot's Worker (``images/cloudflare``).

- :mod:`.config` — the Worker's URL and bearer token (the token encrypted at rest);
- :mod:`.worker` — the Worker's provisioning API and the environment daemon behind its proxy;
- :mod:`.credentials` — the user's model-provider credentials a cloud environment's OpenCode needs;
- :mod:`.costs` — instance types and what running them costs;
- :mod:`.deploy` — ``palot cloud deploy`` with the user's own wrangler login.

The tests run the same Worker locally under ``wrangler dev`` (``tests/localdev.py``, ``tests/rehearsal.py``).
"""
