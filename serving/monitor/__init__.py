"""Line monitoring: SPC charts, input drift and alarms on the service's inspection records."""
