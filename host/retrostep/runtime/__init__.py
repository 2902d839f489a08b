"""Running the firmware core in the MicroPython unix port."""
