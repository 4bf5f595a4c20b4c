"""SFTP: the embedded server, the hub's client side, and the folder layout partners see."""
