//go:build !unix

package main

import "os"

// execve runs path as a child with this process's environment and
// standard streams, and exits with its exit status: where there is no
// exec(2) (Windows), the nearest to replacing this process. It returns
// only when the child cannot be started or waited for.
func execve(path string, argv []string) error {
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		return err
	}
	st, err := p.Wait()
	if err != nil {
		return err
	}
	os.Exit(st.ExitCode())
	return nil
}
