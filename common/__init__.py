"""The bottom layer every package may use: the error tree, secrets, INI value readers."""
