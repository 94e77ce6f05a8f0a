"""The website: static files served by the API app."""
