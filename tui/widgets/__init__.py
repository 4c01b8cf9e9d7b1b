"""Panels of the termnist app; each receives data from the App and posts messages up."""
