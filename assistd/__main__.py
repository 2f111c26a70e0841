from assistd.launch import main

main()
