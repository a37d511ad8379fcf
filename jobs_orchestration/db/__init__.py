"""The platform's and the Email Parser's databases: typed SQLAlchemy 2.0 models and engine helpers."""
