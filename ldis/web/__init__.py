"""HTML pages and the Flask application factory (thin adapters over ldis.services)."""
