"""The streaming shell: Kafka topics, faust-streaming workers, producers. The figures themselves
come from :mod:`monitor.engine`; nothing here computes a CMS rule."""
