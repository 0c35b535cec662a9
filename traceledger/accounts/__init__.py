"""Who is who: registered enterprises, their keys and prefixes, and access tokens."""
