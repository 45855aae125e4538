import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

/** The signed-in operator as `/auth/session` describes them. */
export interface Operator {
  subject: string;
  name: string;
  roles: string[];
  /** The admin methods (`/package.Service/Method`) the operator's roles allow. */
  methods: string[];
  expiresAt: string;
  /** The daemons' screen (px): the canvas habits are drawn on. */
  screen: { width: number; height: number };
}

export const OperatorContext = createContext<Operator | undefined>(undefined);

/** The signed-in operator (the app renders only with one). */
export const useOperator = (): Operator => useContext(OperatorContext)!;

/** Whether the operator may call `Service/Method` of `titanbot.admin.v1`: controls for the rest are not shown (the write service refuses them anyway). */
export function useMay(): (serviceMethod: string) => boolean {
  const operator = useContext(OperatorContext);
  return (serviceMethod) => operator?.methods.includes(`/titanbot.admin.v1.${serviceMethod}`) ?? false;
}

/** The operator, or undefined without a session (the server then sends the page to sign-in). */
export async function loadOperator(): Promise<Operator | undefined> {
  const res = await fetch('/auth/session', { headers: { accept: 'application/json' } });
  return res.status === 200 ? ((await res.json()) as Operator) : undefined;
}
