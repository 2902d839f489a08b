# MicroPython modules for the sim board (this directory goes on MICROPYPATH); the host
# imports only sim_radio_wire from here.
