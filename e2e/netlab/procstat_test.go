package netlab

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       ProcStat
		wantErr    bool
	}{
		{
			name: "a command name with spaces and parentheses",
			line: "4242 (my (odd) name) S 17 4242 4242 0 -1 4194560 300 0 0 0 250 31 0 0 20 0 3 0 987654 1000 100 18446744073709551615\n",
			want: ProcStat{State: 'S', PPid: 17, CPU: 2810 * time.Millisecond, StartTicks: 987654},
		},
		{
			name: "a zombie",
			line: "7 (sh) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12 0 0 0",
			want: ProcStat{State: 'Z', PPid: 1, StartTicks: 12},
		},
		{name: "no command name", line: "7 sh S 1", wantErr: true},
		{name: "cut short", line: "7 (sh) S 1 7 7 0", wantErr: true},
		{name: "not a number", line: "7 (sh) S x 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12 0 0 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.line)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseProcStat: %v, want an error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("parseProcStat = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestReadProcStat reads this process's own record.
func TestReadProcStat(t *testing.T) {
	st, err := ReadProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() || st.StartTicks == 0 {
		t.Errorf("own /proc stat: %+v, want the parent %d and a start time", st, os.Getppid())
	}
}
