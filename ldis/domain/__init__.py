"""The domain core: plain Python rules of ldis. Imports no web, database or queue framework."""
