"""The door's hardware: pin factory choice (``pins``), the pure door state machine
(``door_state``) and the gpiozero door controller (``door``). Importing opens no GPIO pin."""
