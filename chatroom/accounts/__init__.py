"""Server operators and accounts: passwords (Argon2id, off the reactor thread), the
operators file, guesses slowed down, and their commands."""
