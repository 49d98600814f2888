-- App settings the window and the console share: language, theme, close-to-tray, hub source.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
