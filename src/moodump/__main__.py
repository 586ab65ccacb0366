from moodump.cli import main

main()
