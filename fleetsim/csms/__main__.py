from fleetsim.csms.process import child_main

child_main()
