// SIM Link's one small script module. The app works without it; with it, htmx enhances the same URLs.
