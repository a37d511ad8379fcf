from jobs_orchestration.cli import main

main()
