"""The data layer: the store (SQLite / PostgreSQL), validation of the district tables, the
importer, and the loaders and adapters that turn a folder of files into a DataBundle."""
