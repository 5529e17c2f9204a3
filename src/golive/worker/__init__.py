"""Task backends that run deployment records: inline (threads) now, Celery later."""
