# Runs first at every reset on the device: nothing to do before main.py (the board HAL
# sets up hardware when the app starts it, never at import time).
