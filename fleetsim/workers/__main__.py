from fleetsim.workers.child import main

main()
