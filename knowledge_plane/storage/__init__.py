"""Where published knowledge lives: registry (schema, migrations), index store, object store, vector backends."""
