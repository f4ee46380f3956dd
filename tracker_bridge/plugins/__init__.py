"""Built-in tracker backends, each a plugin module registered by ``manager.get_plugin_manager``.

One module (``memory``) or package (``redmine``, ``jira``, ``bugzilla``: ``client.py`` for
HTTP, ``mapping.py`` pure, ``backend.py`` joining them) per backend; the module name, the
registry name and the ``backend:`` value in the config are the same word. ``_http.py`` holds
the helpers the HTTP backends share. A plugin imports the contract (``tracker_bridge.backend``,
``core``, ``errors``, ``hookspecs``), never the config, the sync layer, the CLI or another
plugin (``tests/plugins/test_layering.py``).
"""
