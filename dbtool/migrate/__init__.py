"""Migrations: the file tree, the database's state, yoyo's tracking and the lock, the runner, the data-loss guard, the updated_at triggers, and the commands.
"""
