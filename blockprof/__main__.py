try:
    from blockprof.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python was still importing the CLI: the same exit as later
    import os

    os._exit(130)

main()
