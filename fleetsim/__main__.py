from fleetsim.cli import main

main()
