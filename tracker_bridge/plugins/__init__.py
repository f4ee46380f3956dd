"""Built-in tracker backends, each a plugin module registered by ``manager.get_plugin_manager``.

One module per backend; the module name, the registry name and the ``backend:`` value in the
config are the same word (``memory``, ``redmine``).
"""
