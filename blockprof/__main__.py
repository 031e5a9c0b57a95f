from blockprof.cli import main

main()
