import sys

try:
    from appliance.cli import main
except KeyboardInterrupt:  # Ctrl-C while the face models load
    sys.exit(130)

sys.exit(main())
