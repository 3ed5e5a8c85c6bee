"""pando-lua: sandboxed Lua filters and hooks for Pando (lupa, Lua 5.4).

The engine lives in :mod:`pando_lua.engine`, the ``[lua]`` config section in
:mod:`pando_lua.config`; the pluggy wiring is in ``pando_lua.plugin``.
"""

__version__ = "0.1.0"
