"""`python -m monitor.cli`."""

from monitor.cli import main

if __name__ == "__main__":  # `bench` spawns processes, which import this module again
    main()
